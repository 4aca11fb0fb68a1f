package engine

func setAVX2(on bool) { useAVX2 = on }
