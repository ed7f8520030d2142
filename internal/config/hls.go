package config

// HLS is what the [protocol] enable_hls* keys and the [hls] section say
// about live HLS on the HTTP port, in ZLMediaKit's names. Berth keeps
// segments in memory and, by default, makes them only while someone plays
// (hls_demand=1); the keys about files on disk are recording's.
type HLS struct {
	Enable     bool // [protocol] enable_hls: /app/stream/hls.m3u8 (MPEG-TS segments)
	EnableFMP4 bool // [protocol] enable_hls_fmp4: /app/stream/hls.fmp4.m3u8 (fMP4 segments, LL-HLS parts)
	SegDur     int  // seconds a segment lasts at least; cut on the next keyframe
	SegNum     int  // segments a live playlist lists
	SegRetain  int  // segments kept after they leave the playlist, for players a little behind
	SegKeep    bool // [hls] segKeep: an HLS recording keeps every segment (Berth's default 1); 0 = a rolling window on disk
	DeleteSec  int  // [hls] deleteDelaySec: seconds a segment that left a rolling window stays on disk
	PartMS     int  // LL-HLS: milliseconds a part lasts at least
	Demand     bool // [protocol] hls_demand: make HLS only while someone watches (0: for every stream, as ZLMediaKit's default)
}

func init() { keys = append(keys, hlsKeys()...) }

func hlsKeys() []key {
	return []key{
		boolKey("protocol", "enable_hls", "hls", "1 = serve HLS with MPEG-TS segments at /app/stream/hls.m3u8 on [http] port",
			func(c *Config) *bool { return &c.HLS.Enable }),
		boolKey("protocol", "enable_hls_fmp4", "hls-fmp4", "1 = serve HLS with fMP4 segments and Low-Latency HLS parts at /app/stream/hls.fmp4.m3u8 (ZLMediaKit's default is 0)",
			func(c *Config) *bool { return &c.HLS.EnableFMP4 }),
		boolKey("protocol", "hls_demand", "", "1 = make a stream's HLS only while someone watches it (Berth's default); 0 = for every stream from its publish, as ZLMediaKit's default, so the first viewer finds a full playlist",
			func(c *Config) *bool { return &c.HLS.Demand }),
		intKey("hls", "segDur", "hls-seg-dur", "seconds an HLS segment lasts at least (it is cut on the next keyframe)", 1, 60,
			func(c *Config) *int { return &c.HLS.SegDur }),
		intKey("hls", "segNum", "hls-seg-num", "segments a live HLS playlist lists (LL-HLS lists at least 7)", 1, 100,
			func(c *Config) *int { return &c.HLS.SegNum }),
		intKey("hls", "segRetain", "", "HLS segments kept in memory after they leave the playlist, for players a little behind", 0, 100,
			func(c *Config) *int { return &c.HLS.SegRetain }),
		boolKey("hls", "segKeep", "", "1 = an HLS recording keeps every segment on disk (Berth's default); 0 = a rolling window of segNum segments in the playlist, segRetain more on disk, older ones deleted deleteDelaySec after they leave it",
			func(c *Config) *bool { return &c.HLS.SegKeep }),
		intKey("hls", "deleteDelaySec", "", "seconds a segment of a rolling HLS recording (segKeep=0) stays on disk after it leaves the playlist and segRetain", 0, 3600,
			func(c *Config) *int { return &c.HLS.DeleteSec }),
		intKey("hls", "partMS", "hls-part-ms", "milliseconds a Low-Latency HLS part lasts at least (Berth's key; ZLMediaKit has no LL-HLS)", 100, 5000,
			func(c *Config) *int { return &c.HLS.PartMS }),
	}
}

func defaultHLS(c *Config) {
	c.HLS = HLS{Enable: true, EnableFMP4: true, SegDur: 2, SegNum: 3, SegRetain: 5, SegKeep: true, DeleteSec: 10, PartMS: 200, Demand: true}
}
