"""pcseg.sparse"""
