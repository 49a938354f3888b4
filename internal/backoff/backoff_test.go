package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for n := 1; n <= 40; n++ {
		want := min(time.Second<<min(n-1, 20), time.Minute)
		for range 100 {
			d := Delay(time.Second, time.Minute, n)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %s outside [%s, %s]", n, d, want/2, want)
			}
		}
	}
	if Delay(0, time.Minute, 3) != 0 {
		t.Fatal("zero base")
	}
}
