"""ohmflow.emulator"""
