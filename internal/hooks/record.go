package hooks

import "time"

// RecordMP4 sends on_record_mp4 for a closed MP4 recording file, in
// ZLMediaKit's body: file_path, file_name, file_size, folder, start_time
// (Unix seconds), time_len (seconds), url (relative to the recordings'
// root), app, stream, vhost.
func (c *Client) RecordMP4(app, stream, filePath, fileName, folder, url string, size int64, start time.Time, length time.Duration) {
	c.record("on_record_mp4", app, stream, filePath, fileName, folder, url, size, start, length)
}

// RecordTS sends on_record_ts for a closed HLS recording segment, with
// on_record_mp4's fields (ZLMediaKit's RecordInfo).
func (c *Client) RecordTS(app, stream, filePath, fileName, folder, url string, size int64, start time.Time, length time.Duration) {
	c.record("on_record_ts", app, stream, filePath, fileName, folder, url, size, start, length)
}

func (c *Client) record(hook, app, stream, filePath, fileName, folder, url string, size int64, start time.Time, length time.Duration) {
	c.Notify(hook, map[string]any{"vhost": DefaultVhost, "app": app, "stream": stream,
		"file_path": filePath, "file_name": fileName, "file_size": size, "folder": folder,
		"start_time": start.Unix(), "time_len": length.Seconds(), "url": url}, nil)
}
