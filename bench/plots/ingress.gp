# TCP throughput from the outside to a published port by write size: ingress.dat (write_size no_container brfusion nested_nat).
set terminal pngcairo size 900,520 font ",11"
set output dir."/ingress.png"
set title "TCP throughput from the outside to a published port by write size (iperf3 -l)"
set xlabel "write size (bytes)"
set ylabel "Mbit/s (median)"
set logscale x 2
set xtics (64, 512, 1280)
set yrange [0:*]
set key top left
set grid ytics
plot dir."/ingress.dat"   using 1:2 with linespoints lw 2 pt 7 title "no container (process in the VM)", \
     ""                    using 1:3 with linespoints lw 2 pt 5 title "brfusion (container on a host NIC)", \
     ""                    using 1:4 with linespoints lw 2 pt 9 title "nested NAT (Docker bridge+NAT in the VM)"
