# Shoal — build, test and set-up. `make test` is all a fresh Debian machine needs.
SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build and the tests need; `make setup` installs the missing ones.
# etcd-server, redis-server, websocketd and openssh-server are started by the tests themselves, never as services.
APT_PACKAGES := pvm pvm-dev libtirpc-dev libyaml-dev libsqlite3-dev iproute2 util-linux procps chromium etcd-server redis-server websocketd curl openssl openssh-server

.PHONY: setup build demo test bench-dataplane bench-broker bench-scale bench-paper bench-failover plot-benchmarks clean

setup:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing"; \
	  scripts/apt-install $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "setup: Swift 6 is needed (https://swift.org/install)"; exit 1; }

build: setup
	$(SWIFT) build

# The README's first command: a whole cluster on this machine under a load ramp, a summary, nothing left running.
demo: setup
	$(SWIFT) build
	"$$($(SWIFT) build --show-bin-path)/shoal-demo" $(DEMO_ARGS)

test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Failover: a standby broker taking over, a new pool after the pvmd died; medians (docs/ha.md).
bench-failover: setup
	SWIFT=$(SWIFT) scripts/bench-failover $(RUNS)

# The data path against direct and nginx, side by side (docs/benchmarks-dataplane.md); installs wrk and nginx if missing.
bench-dataplane: setup
	SWIFT=$(SWIFT) scripts/bench-dataplane

# The broker: lease grant latency, lease operations per second, reaction to a load step
# (docs/benchmarks-broker.md). Release build, like bench-dataplane; BENCH_ARGS passes options.
bench-broker: setup
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)
	"$$($(SWIFT) build -c release $(SWIFT_BUILD_FLAGS) --show-bin-path)/shoal-bench-broker" $(BENCH_ARGS)

# The scale curve: pool start over 3-64 namespace hosts (one pvmd each) and the cost of a decision
# per hosts × services, with its plot (docs/benchmarks-scale.md). BENCH_ARGS adds options.
bench-scale: setup
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)
	"$$($(SWIFT) build -c release $(SWIFT_BUILD_FLAGS) --show-bin-path)/shoal-bench-broker" scale --plot docs/benchmarks-scale.png $(BENCH_ARGS)

# The paper's Tables 1-3 with httperf, beside direct access and nginx (docs/benchmarks.md); installs
# httperf, nginx-light and curl if missing. BENCH_ARGS picks tables (e.g. BENCH_ARGS=table1) or options.
bench-paper: setup
	@missing=$$(command -v httperf >/dev/null || echo httperf; command -v curl >/dev/null || echo curl; \
	  { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || echo nginx-light); \
	if [ -n "$$missing" ]; then \
	  echo "bench-paper: installing" $$missing; \
	  scripts/apt-install $$missing; \
	fi
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)
	"$$($(SWIFT) build -c release $(SWIFT_BUILD_FLAGS) --show-bin-path)/shoal-bench-paper" $(BENCH_ARGS)

# The plots of docs/benchmarks.md from docs/benchmarks-paper.csv (needs python3 with matplotlib).
plot-benchmarks:
	scripts/plot-benchmarks

clean:
	rm -rf .build
