"""pcseg.ops"""
