"""pcseg.synth"""
