package logtext

import "testing"

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"":  "",
		"a": "a",
		" api error\n\tBadRequest:  Bad\r\nRequest ": "api error BadRequest: Bad Request",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
