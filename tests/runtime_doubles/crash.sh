#!/bin/sh
# A runtime program that crashes before answering.
echo "Error: the double's model loader broke" >&2
exit 3
