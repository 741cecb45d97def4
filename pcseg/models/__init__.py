"""pcseg.models"""
