"""ohmflow.sim"""
