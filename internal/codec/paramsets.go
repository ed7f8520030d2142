package codec

// WithParams returns a keyframe's access unit with the parameter sets it
// lacks put in front (an RTMP or FLV source sends them once, out of band;
// a decoder or a DTS extractor that joins at a keyframe needs them in
// band). au is returned as is when it carries them all; it is never
// changed (the hub shares it).
func (p *ParamSets) WithParams(au [][]byte, hevc bool) [][]byte {
	var have ParamSets
	have.Take(au, hevc)
	var front [][]byte
	if hevc && have.VPS == nil && p.VPS != nil {
		front = append(front, p.VPS)
	}
	if have.SPS == nil && p.SPS != nil {
		front = append(front, p.SPS)
	}
	if have.PPS == nil && p.PPS != nil {
		front = append(front, p.PPS)
	}
	if front == nil {
		return au
	}
	return append(front, au...)
}
