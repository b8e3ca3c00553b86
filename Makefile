# Builds ngx_http_affiliate_module as a dynamic module for Debian's
# /usr/sbin/nginx (nginx-dev), runs the demo, the tests and the benchmark.

SHELL      = /bin/bash
NGINX_SRC ?= /usr/share/nginx/src
NGINX     ?= /usr/sbin/nginx
BUILD     ?= $(CURDIR)/build
CC        ?= cc
WFLAGS    ?= -Wall -Wextra -Werror -Wno-unused-parameter
MODULE     = $(BUILD)/ngx_http_affiliate_module.so
SRCS       = config $(wildcard ngx_http_affiliate_module/*.[ch])

.PHONY: all deps demo demo-stop test bench clean build-clang

all: $(MODULE)

deps:
	@sh scripts/deps.sh

$(BUILD)/objs/Makefile: config | deps
	rm -rf $(BUILD)/src && mkdir -p $(BUILD)/src
	cp -a $(NGINX_SRC)/. $(BUILD)/src/
	cd $(BUILD)/src && . ./conf_flags && ./configure \
	    --with-cc="$(CC)" \
	    --with-cc-opt="-g -O2 -fPIC $(WFLAGS)" --with-ld-opt=-fPIC \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(CURDIR) --builddir=$(BUILD)/objs \
	    > $(BUILD)/configure.log 2>&1 \
	    || { tail -20 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(BUILD)/objs/Makefile $(SRCS)
	$(MAKE) -s -f $(BUILD)/objs/Makefile -C $(BUILD)/src modules
	cp $(BUILD)/objs/ngx_http_affiliate_module.so $@.tmp && mv -f $@.tmp $@

demo: all
	@sh scripts/demo.sh

demo-stop:
	@sh scripts/demo.sh stop

test: all
	@sh scripts/deps.sh test
	@sh scripts/deps.sh test-ship
	prove -r t/

bench: all
	@bash bench/run.sh

# Debian package, built with dpkg-buildpackage (debian/, dh-sequence-nginx)
# in a copy of the tree under build/deb; the .deb is copied here. Version:
# debian/changelog. The build dependencies come from apt-get build-dep, not
# scripts/deps.sh: building the package never stops or disables an nginx.
DEB_PKG  = libnginx-mod-http-affiliate
DEB_VER  = $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_DIR  = $(BUILD)/deb
DEB_SRC  = $(DEB_DIR)/$(DEB_PKG)-$(DEB_VER)
DEB_FILE = $(DEB_PKG)_$(DEB_VER)_$(DEB_ARCH).deb
SUDO     = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_FILES = $(wildcard LICENSE README.md config debian docs examples \
              ngx_http_affiliate_module tools sql)

.PHONY: deb test-deb

deb:
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_SRC)
	tar -C $(CURDIR) --exclude=__pycache__ -cf - $(DEB_FILES) \
	    | tar -C $(DEB_SRC) -xf -
	cd $(DEB_SRC) && { command -v lintian >/dev/null && \
	    dpkg-checkbuilddeps 2>/dev/null; } || { \
	    $(SUDO) apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q \
	        --no-install-recommends dpkg-dev lintian >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get build-dep -y -q \
	        --no-install-recommends ./ >/dev/null; }
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc > $(DEB_DIR)/build.log 2>&1 \
	    || { tail -40 $(DEB_DIR)/build.log; exit 1; }
	lintian --fail-on error \
	    $(DEB_DIR)/$(DEB_PKG)_$(DEB_VER)_$(DEB_ARCH).changes
	cp $(DEB_DIR)/$(DEB_FILE) $(CURDIR)/$(DEB_FILE)
	@echo "built $(DEB_FILE)"

test-deb: deb
	sh scripts/test-deb.sh $(CURDIR)/$(DEB_FILE)

# nginx 1.22.1 (Debian source) + ASan/UBSan with the module built in; the
# whole suite against it; valgrind memcheck on a subset (t/README.md)
.PHONY: asan test-asan test-valgrind
PROVE_JOBS ?= 2
VALGRIND_TESTS ?= t/01-redirect.t t/02-record.t t/03-hostile.t \
    t/07-tiny-zone.t t/08-config-errors.t t/09-variables.t t/20-geo.t \
    t/21-geo-records.t t/30-rules.t t/31-open-redirect.t t/32-capture.t \
    t/33-cookie.t t/34-conversion.t t/35-bots.t t/36-unique-anon.t \
    t/13-shared-log.t t/14-zone-tables.t t/39-core-edges.t \
    t/42-link-options.t

asan:
	@bash scripts/build-asan.sh

test-asan: asan
	AFF_NGINX=$(BUILD)/asan/nginx AFF_MODULE=static prove -j$(PROVE_JOBS) -r t/

test-valgrind: all
	@sh scripts/deps.sh valgrind
	AFF_VALGRIND=1 prove -j$(PROVE_JOBS) $(VALGRIND_TESTS)

# libFuzzer fuzzers of the parsers and builders, FUZZ_TIME seconds each;
# fuzz-ci: 30 s each (fuzz/README.md)
.PHONY: fuzz fuzz-build fuzz-ci
FUZZ_TIME ?= 60

fuzz-build:
	@sh scripts/deps.sh fuzz
	@BUILD=$(BUILD) bash fuzz/build.sh

fuzz: fuzz-build
	@BUILD=$(BUILD) bash fuzz/run.sh $(FUZZ_TIME)

fuzz-ci: fuzz-build
	@BUILD=$(BUILD) bash fuzz/run.sh 30

# the module built with clang 14 and the same warnings as errors (the
# standard: clean under gcc and clang)
build-clang:
	@sh scripts/deps.sh fuzz
	$(MAKE) BUILD=$(BUILD)/clang CC=clang-14 all

clean:
	rm -rf $(BUILD)
