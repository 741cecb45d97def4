"""pcseg.viz"""
