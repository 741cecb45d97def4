"""pcseg.engine"""
