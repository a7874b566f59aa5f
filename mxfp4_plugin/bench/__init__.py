"""`mxfp4-plugin bench`: every registered backend that can run a layer here, side by side in one
process, against the roofline measured in the same run."""
