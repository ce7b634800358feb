package hub

import (
	"context"
	"testing"
	"time"
)

func TestLazyTimeout(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()

	// Never asked: no timer, done after cancel.
	l := &lazyTimeout{parent: parent, d: time.Hour}
	l.cancel()
	if l.stop != nil || l.Err() == nil {
		t.Fatalf("unused context after cancel: stop %v, err %v", l.stop != nil, l.Err())
	}

	// Asked: a real deadline, which fires.
	l = &lazyTimeout{parent: parent, d: 20 * time.Millisecond}
	if dl, ok := l.Deadline(); !ok || time.Until(dl) > 20*time.Millisecond {
		t.Fatalf("deadline %v %v", dl, ok)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("lazy timeout never fired")
	}
	if l.Err() != context.DeadlineExceeded {
		t.Fatalf("err = %v", l.Err())
	}
	l.cancel()

	// The parent's cancellation reaches it.
	l = &lazyTimeout{parent: parent, d: time.Hour}
	cancelParent()
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("parent cancellation not propagated")
	}
	l.cancel()
}
