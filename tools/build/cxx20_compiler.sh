#!/usr/bin/env bash
# Compiler wrapper used only while building mmcv's ops (see tools/setup.sh).
# mmcv 2.1.0's setup.py compiles with -std=c++14/17, but the torch 2.14
# headers require C++20; rewrite the standard flag and call the real compiler.
args=()
for arg in "$@"; do
  case "$arg" in
    -std=c++14|-std=c++17|-std=gnu++14|-std=gnu++17) arg=-std=c++20 ;;
  esac
  args+=("$arg")
done
exec "${MMTPSPIKE_REAL_CXX:-g++}" "${args[@]}"
