# The two commands a newcomer needs: `make run` and `make test`. Everything else is here
# for the people working on sluice.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
DEV_DIR ?= $(CURDIR)/.dev
CTEST_ARGS ?=
# make test-asan: the whole suite under AddressSanitizer + UBSan, in a build dir of its own.
ASAN_BUILD_DIR ?= build-asan

.PHONY: all deps build build-asan run test test-asan unit integration format format-check clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Private redis-server and rabbitmq-server on loopback in .dev/, then sluiced in the
# foreground; Ctrl-C stops all of it.
run: deps build
	@mkdir -p $(DEV_DIR)
	scripts/dev-servers $(DEV_DIR)/servers -- $(BUILD_DIR)/sluiced -f -c etc/sluice.dev.yaml

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

# Sanitizer settings (ASAN_OPTIONS, ...) come with each test from CMakeLists.txt, so a plain
# ctest in $(ASAN_BUILD_DIR) runs the same; the default build type there is Sanitize (-O1).
$(ASAN_BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD_DIR) -DSLUICE_SANITIZE=ON

build-asan: $(ASAN_BUILD_DIR)/CMakeCache.txt
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS)

test-asan: deps build-asan
	cd $(ASAN_BUILD_DIR) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -L unit

integration: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) -L integration

FORMAT_FILES = $(shell git ls-files -co --exclude-standard '*.cpp' '*.h')

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)
