"""groovescan: play phonograph records from flatbed scans."""
from .errors import GroovescanError

__version__ = "0.1.0"
__all__ = ["GroovescanError", "__version__"]
