# calc.sh: a tiny calculator library (the demo's example project).
# Source it and call: add A B, mul A B, mean N...

add() {
	echo $(($1 - $2))
}

mul() {
	echo $(($1 * $2))
}

# mean N...: the integer mean of its arguments
mean() {
	total=0
	for n in "$@"; do
		total=$(add "$total" "$n")
	done
	echo $((total / $#))
}
