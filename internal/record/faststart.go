package record

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	mp4 "github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// fastStart ([record] fastStart=1) rewrites a closed recording as a
// progressive MP4 with its moov in front of the media (ISO/IEC 14496-12
// §6.2.3: the "fast start" layout old players and some editors want). The
// fragmented file stays in place until the progressive one is whole and
// fsynced; then a rename replaces it, so a crash during the rewrite leaves
// the fragmented file (and a hidden ".faststart" that Recover removes).

// maxFragment bounds the bytes of one moof+mdat pair read into memory.
const maxFragment = 64 << 20

// fastStartSuffix names the hidden temporary file of a rewrite.
const fastStartSuffix = ".faststart"

// errTooBig: pmp4 writes 32-bit chunk offsets and sizes.
var errTooBig = errors.New("4 GiB or more: a progressive MP4 with 32-bit offsets cannot hold it (the file stays fragmented)")

// progressive rewrites the fragmented MP4 at path in place and returns its
// new size.
func progressive(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size() >= math.MaxUint32 {
		return 0, errTooBig
	}
	pres, err := readPresentation(f, st.Size())
	if err != nil {
		return 0, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+fastStartSuffix)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	err = pres.Marshal(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = out.Sync()
	}
	size, _ := out.Seek(0, io.SeekCurrent)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	f.Close() // the samples are read; Windows renames no open file
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return size, nil
}

// readPresentation reads the init segment and every moof+mdat pair of a
// recording into a pmp4.Presentation whose samples read their payloads
// from the file when it is written.
func readPresentation(f *os.File, size int64) (*pmp4.Presentation, error) {
	var init mp4.Init
	tracks := map[int]*pmp4.Track{}
	pres := &pmp4.Presentation{}
	var hdr [8]byte
	var pairStart int64
	inMoof := false
	for pos := int64(0); pos+8 <= size; {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return nil, err
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:])
		if n < 8 || n > size-pos {
			return nil, fmt.Errorf("box %q at %d: size %d does not fit the file", typ, pos, n)
		}
		switch typ {
		case "ftyp":
		case "moov":
			b := make([]byte, pos+n) // ftyp and moov: Init.Unmarshal reads both
			if _, err := f.ReadAt(b, 0); err != nil {
				return nil, err
			}
			if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
				return nil, fmt.Errorf("moov: %w", err)
			}
			for _, it := range init.Tracks {
				t := &pmp4.Track{ID: it.ID, TimeScale: it.TimeScale, Codec: it.Codec}
				tracks[it.ID] = t
				pres.Tracks = append(pres.Tracks, t)
			}
		case "moof":
			pairStart, inMoof = pos, true
		case "mdat":
			if !inMoof {
				break
			}
			inMoof = false
			end := pos + n
			if end-pairStart > maxFragment {
				return nil, fmt.Errorf("fragment at %d is over %d bytes", pairStart, maxFragment)
			}
			pair := make([]byte, end-pairStart)
			if _, err := f.ReadAt(pair, pairStart); err != nil {
				return nil, err
			}
			if err := addPair(f, pair, pairStart, tracks); err != nil {
				return nil, fmt.Errorf("fragment at %d: %w", pairStart, err)
			}
		}
		pos += n
	}
	if len(pres.Tracks) == 0 {
		return nil, errNotMP4
	}
	return pres, nil
}

// addPair appends the samples of one moof+mdat to their tracks; each
// sample reads its payload back from the file at its own offset (a payload
// Parts.Unmarshal returns is a slice of pair, which says where it is).
func addPair(f *os.File, pair []byte, at int64, tracks map[int]*pmp4.Track) error {
	var parts mp4.Parts
	if err := parts.Unmarshal(pair); err != nil {
		return err
	}
	for _, p := range parts {
		for _, pt := range p.Tracks {
			t := tracks[pt.ID]
			if t == nil {
				continue
			}
			if len(t.Samples) == 0 && pt.BaseTime <= math.MaxInt32 {
				t.TimeOffset = int32(pt.BaseTime) // an empty edit: the track starts this late (§8.6.6)
			}
			for _, s := range pt.Samples {
				off := int64(cap(pair) - cap(s.Payload))
				if len(s.Payload) > 0 && (off < 0 || off+int64(len(s.Payload)) > int64(len(pair)) || &pair[off] != &s.Payload[0]) {
					return errors.New("a sample's payload is not inside its fragment")
				}
				fileOff, n := at+off, len(s.Payload)
				t.Samples = append(t.Samples, &pmp4.Sample{Duration: s.Duration, PTSOffset: s.PTSOffset,
					IsNonSyncSample: s.IsNonSyncSample, PayloadSize: uint32(n),
					GetPayload: func() ([]byte, error) {
						b := make([]byte, n)
						_, err := f.ReadAt(b, fileOff)
						return b, err
					}})
			}
		}
	}
	return nil
}
