#!/bin/sh
# The whole test suite, as CI runs it (.ci/run): host packages, formatting and
# lints, the workspace's unit and black-box tests, and BuildKit's conformance
# cases when ../shared is beside the checkout.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup-host.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --all-targets --quiet
cargo test --workspace --quiet
if [ -f ../shared/conformance/run.py ]; then
  python3 ../shared/conformance/run.py target/debug/kiln
fi
echo "all tests passed"
