"""cxdesk: a closed-loop support desk that lives in the terminal."""

__version__ = "0.1.0"
