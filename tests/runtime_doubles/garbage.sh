#!/bin/sh
# A runtime program that exits 0 but writes a sets.json that is not JSON. Called as: node run_node.js MODEL IN OUT.
echo "Segmentation fault? no: just nonsense" > "$4/sets.json"
