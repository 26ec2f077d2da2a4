package main

import (
	"fmt"
	"reflect"
	"sync"
	"time"
)

// failure is what a failed check panics with; run reports it as the reason.
type failure string

func failf(format string, args ...interface{}) {
	panic(failure(fmt.Sprintf(format, args...)))
}

func checkf(ok bool, format string, args ...interface{}) {
	if !ok {
		failf(format, args...)
	}
}

func checkEqual(want, got interface{}, what string) {
	if !reflect.DeepEqual(want, got) {
		failf("%s: want %v, got %v", what, want, got)
	}
}

// checkNoErr fails with err unless it is nil.
func checkNoErr(err error, what string) {
	if err != nil {
		failf("%s: %v", what, err)
	}
}

// Wait bounds every wait: generous, for a loaded CI machine.
const Wait = 60 * time.Second

// waitFor polls done every 20 ms; fails naming what after Wait.
func waitFor(what string, done func() bool) {
	waitWithin(Wait, what, done)
}

// waitWithin is waitFor bounded by limit.
func waitWithin(limit time.Duration, what string, done func() bool) {
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			failf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// problems collects what listeners saw wrong: they run on the client's goroutines, where a
// failed check cannot stop the scenario, so the scenario checks the list itself.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) add(format string, args ...interface{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) any() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.list) > 0
}

// check fails with the first few problems, if there are any.
func (p *problems) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.list); n > 0 {
		first := p.list
		if len(first) > 3 {
			first = first[:3]
		}
		failf("%d deliveries differ from what was sent, the first: %q", n, first)
	}
}
