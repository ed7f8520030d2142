package record

import (
	"testing"
	"time"

	"github.com/berthmedia/berth/internal/muxring"
)

// BenchmarkRebase is a recording's per-fragment work besides the write:
// copy the shared fragment into the file's buffer and move its tfdts.
func BenchmarkRebase(b *testing.B) {
	init := testInit(b)
	frag := testFragment(b, 1, 90000*3600, 48000*3600)
	// A fragment of a 2 Mb/s stream at 25 fps is ~10 KB.
	big := append(frag[:len(frag):len(frag)], make([]byte, 10<<10)...)
	offs := fileOffsets(frag, timescales(init))
	buf := make([]byte, 0, len(big))
	var scratch []tfdt
	b.ReportAllocs()
	b.SetBytes(int64(len(big)))
	for b.Loop() {
		buf = rebase(buf[:0], big, offs, &scratch)
	}
}

// BenchmarkFileWrite is a recording's whole per-fragment cost: rebase and
// one write of a 10 KB fragment to a file in the test's temporary
// directory, fsynced every DefaultSyncEvery.
func BenchmarkFileWrite(b *testing.B) {
	init := testInit(b)
	frag := testFragment(b, 1, 90000*3600, 48000*3600)
	big := append(frag[:len(frag):len(frag)], make([]byte, 10<<10)...)
	w, err := createFile(b.TempDir(), "record", "live", "bench", time.Now(), init, DefaultSyncEvery)
	if err != nil {
		b.Fatal(err)
	}
	ch := &muxring.Chunk{Key: true, Data: big, Duration: 40 * time.Millisecond}
	b.ReportAllocs()
	b.SetBytes(int64(len(big)))
	for b.Loop() {
		if err := w.write(ch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if _, err := w.close(); err != nil {
		b.Fatal(err)
	}
}
