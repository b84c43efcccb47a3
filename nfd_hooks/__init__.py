"""nfd-hooks: devicetree and USB features for Node Feature Discovery's local source."""

__version__ = "0.1.0"
