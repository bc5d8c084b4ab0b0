package greeter

import "testing"

func TestGreetings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Hello("you"), "Hello, you!"},
		{HelloAgain("you"), "Hello again, you!"},
		{Hello(""), "Hello, !"},
		{Hello("Zoë"), "Hello, Zoë!"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
