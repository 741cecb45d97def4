"""pcseg.metrics"""
