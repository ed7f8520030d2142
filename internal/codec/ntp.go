package codec

import (
	"math"
	"time"
)

// ntpEpochOffset is the seconds from NTP's epoch (1900) to Unix's (1970).
const ntpEpochOffset = 2208988800

// NTPTime is RFC 3550's 64-bit NTP timestamp of t, as RTCP sender reports
// carry it: seconds since 1900 and a 32-bit fraction.
func NTPTime(t time.Time) uint64 {
	s := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return s<<32 | frac
}

// NTPToTime is NTPTime's inverse, in UTC.
func NTPToTime(v uint64) time.Time {
	secs := int64(v>>32) - ntpEpochOffset
	nsec := int64((v & math.MaxUint32) * 1e9 >> 32)
	return time.Unix(secs, nsec).UTC()
}
