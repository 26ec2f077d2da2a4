// Command petrel-compat-go drives the official Apache RocketMQ Go client
// (github.com/apache/rocketmq-client-go/v2, remoting protocol) against Petrel:
//
//	petrel-compat-go <scenario> namesrv=ADDR run=SUFFIX [broker=ADDR] [key=value...]
//
// A scenario checks what it must itself and stops at the first difference. The program
// prints "PASSED <scenario>" and exits 0 only if it passed; otherwise it prints
// "FAILED <scenario>: <why>" and exits 1. Lines starting with "RESULT " are facts for the
// cargo test that ran it.
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// scenarios maps each name on the command line to its function; Go cannot find functions
// by name at run time, so this table is the one list of them.
var scenarios = map[string]func(Args){
	"send-sync":  sendSync,
	"clustering": clustering,
	"orderly":    orderly,
	"retry":      retryLater,
	"tags":       tagSubscriptions,
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	name := os.Args[1]
	scenario, ok := scenarios[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
		usage()
	}
	opts := map[string]string{}
	for _, kv := range os.Args[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(os.Stderr, "not key=value: %s\n", kv)
			os.Exit(2)
		}
		opts[k] = v
	}
	// The client logs every connection, rebalance and heartbeat at info; a scenario's own
	// output is what tells what happened. PETREL_COMPAT_GO_LOG=debug (or info, warn, error)
	// shows the client's log on stderr when looking into a failure.
	level := os.Getenv("PETREL_COMPAT_GO_LOG")
	if level == "" {
		level = "fatal"
	}
	rlog.SetLogLevel(level)
	os.Exit(run(name, scenario, Args{opts}))
}

func usage() {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: petrel-compat-go <%s> namesrv=ADDR run=SUFFIX [key=value...]\n",
		strings.Join(names, "|"))
	os.Exit(2)
}

// run returns the exit code: 0 if the scenario returned, 1 if it failed a check or panicked.
// The clients' goroutines are not waited for: os.Exit leaves without them.
func run(name string, scenario func(Args), args Args) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				fmt.Printf("FAILED %s: %s\n", name, string(f))
			} else {
				fmt.Printf("FAILED %s: panic: %v\n%s", name, r, debug.Stack())
			}
			code = 1
		}
	}()
	scenario(args)
	fmt.Printf("PASSED %s\n", name)
	return 0
}

// Args are the scenario's key=value options.
type Args struct {
	opts map[string]string
}

// Get is the option key, failing the scenario when it is missing.
func (a Args) Get(key string) string {
	v, ok := a.opts[key]
	if !ok {
		failf("missing option %s=...", key)
	}
	return v
}

func (a Args) Namesrv() string { return a.Get("namesrv") }

// Name is a topic or group name unique to this run: what_<run>.
func (a Args) Name(what string) string { return what + "_" + a.Get("run") }
