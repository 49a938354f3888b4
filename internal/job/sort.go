package job

import "sort"

func sortStates(s []State) {
	sort.SliceStable(s, func(i, j int) bool { return s[i].Spec.Created.Before(s[j].Spec.Created) })
}
