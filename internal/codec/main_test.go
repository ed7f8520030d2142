package codec

import (
	"os"
	"testing"

	"github.com/berthmedia/berth/internal/testmedia"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mediaMu.Lock()
	if mediaDir != "" {
		os.RemoveAll(mediaDir)
	}
	mediaMu.Unlock()
	testmedia.Cleanup()
	os.Exit(code)
}
