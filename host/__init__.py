"""ohmflow.host"""
