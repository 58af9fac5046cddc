"""ohmflow.hdl"""
