package config

// Record is what the [protocol] enable_mp4 / mp4_* keys and the [record]
// section say about MP4 recording, in ZLMediaKit's names, and the [http]
// keys of the static files (recordings) served on the HTTP port. See
// docs/record.md.
type Record struct {
	EnableMP4  bool   // [protocol] enable_mp4: record every stream from its publish
	EnableHLS  bool   // [record] enable_hls (Berth's key): record every stream as HLS on disk from its publish
	AppName    string // [record] appName: the first directory under FilePath
	FilePath   string // [record] filePath, [protocol] mp4_save_path: the root of the recordings
	FileSecond int    // [record] fileSecond, [protocol] mp4_max_second: seconds a file lasts (cut on the next keyframe)
	FastStart  bool   // [record] fastStart: rewrite each closed file as progressive MP4, moov in front
	FileRepeat bool   // [record] fileRepeat: playback loops a file
	MaxDays    int    // [record] maxDays: days of recordings kept, oldest removed first; 0 keeps all
	RootPath   string // [http] rootPath: static files served on the HTTP port
	DirMenu    bool   // [http] dirMenu: list a directory's files (Berth's default 0)
}

func init() { keys = append(keys, recordKeys()...) }

func recordKeys() []key {
	fileSecond := func(c *Config) *int { return &c.Record.FileSecond }
	filePath := func(c *Config) *string { return &c.Record.FilePath }
	return []key{
		boolKey("protocol", "enable_mp4", "", "1 = record every stream to fragmented MP4 files from its publish (startRecord records one)",
			func(c *Config) *bool { return &c.Record.EnableMP4 }),
		boolKey("record", "enable_hls", "", "1 = record every stream as HLS (TS segments and a playlist) under filePath from its publish, as startRecord type=0 does (Berth's key: live HLS is served from memory)",
			func(c *Config) *bool { return &c.Record.EnableHLS }),
		stringKey("protocol", "mp4_save_path", "", "root of the MP4 recordings (ZLMediaKit's name of [record] filePath)", filePath),
		intKey("protocol", "mp4_max_second", "", "seconds an MP4 recording file lasts (ZLMediaKit's name of [record] fileSecond)", 1, 86400, fileSecond),
		stringKey("record", "appName", "", "first directory of a recording under filePath: <filePath>/<appName>/<app>/<stream>/<YYYY-MM-DD>/<HH-MM-SS>.mp4",
			func(c *Config) *string { return &c.Record.AppName }),
		stringKey("record", "filePath", "record-path", "root of the MP4 recordings", filePath),
		intKey("record", "fileSecond", "", "seconds an MP4 recording file lasts at least (cut on the next keyframe)", 1, 86400, fileSecond),
		boolKey("record", "fastStart", "", "1 = rewrite each closed MP4 recording as progressive MP4 with its index in front (files are fragmented MP4 while written, which every player reads)",
			func(c *Config) *bool { return &c.Record.FastStart }),
		boolKey("record", "fileRepeat", "", "1 = the playback of a recording (rtsp://host/record/app/stream/day/file.mp4) loops at the file's end",
			func(c *Config) *bool { return &c.Record.FileRepeat }),
		intKey("record", "maxDays", "", "days of MP4 recordings kept under filePath/appName (today is the first); older days are removed, oldest first, each logged; 0 keeps all", 0, 100000,
			func(c *Config) *int { return &c.Record.MaxDays }),
		stringKey("http", "rootPath", "", "directory served as static files on the HTTP port (recordings under <rootPath>/<appName>/...); empty = none",
			func(c *Config) *string { return &c.Record.RootPath }),
		boolKey("http", "dirMenu", "", "1 = list a directory's files under rootPath (Berth's default 0: a listing shows every recording)",
			func(c *Config) *bool { return &c.Record.DirMenu }),
	}
}

func defaultRecord(c *Config) {
	c.Record = Record{AppName: "record", FilePath: "./www", FileSecond: 3600, RootPath: "./www"}
}
