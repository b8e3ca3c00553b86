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

.PHONY: all deps demo demo-stop test bench clean

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
	prove -r t/

bench: all
	@bash bench/run.sh

clean:
	rm -rf $(BUILD)
