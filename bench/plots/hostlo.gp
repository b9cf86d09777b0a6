# Hostlo: hostlo.dat ("path" udp_avg tcp_avg mbits).
set terminal pngcairo size 900,520 font ",11"
set output dir."/hostlo.png"
set title "Two containers of one pod: request/response latency (ping-pong, 64 B, average)"
set ylabel "microseconds (half the round trip)"
set style data histogram
set style histogram clustered gap 2
set style fill solid 0.6 border -1
set yrange [0:*]
set key top left
set grid ytics
plot dir."/hostlo.dat" using 2:xtic(1) title "UDP", "" using 3 title "TCP"
