# Request/response latency to the outside: latency.dat ("path" udp_avg udp_p50 udp_p99 tcp_avg tcp_p50 tcp_p99).
set terminal pngcairo size 900,520 font ",11"
set output dir."/latency.png"
set title "Request/response latency to the outside (ping-pong, 64 B; bars: average, whiskers: p50 to p99)"
set ylabel "microseconds (half the round trip)"
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.6 border -1
set yrange [0:*]
set key top left
set grid ytics
plot dir."/latency.dat" using 2:3:4:xtic(1) title "UDP", \
     ""                 using 5:6:7 title "TCP"
