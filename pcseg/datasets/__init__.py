"""pcseg.datasets"""
