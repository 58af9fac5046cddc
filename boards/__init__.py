"""ohmflow.boards"""
