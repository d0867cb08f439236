# chart.gp — the chart of a bench/compare run (purchases/s and p99 by buyers, per layout).
#   gnuplot -e "dir='bench/results/compare-YYYY-MM-DD'" bench/compare/chart.gp
# Reads dir/chart.vars and dir/chart-cards<K>.dat (written by report.py); writes dir/chart.png.
load dir.'/chart.vars'
set terminal pngcairo size 1400,1300 enhanced font 'Helvetica,11' background rgb 'white'
set output dir.'/chart.png'
set multiplot layout 2,nlayouts title "{/:Bold giftcard vs PostgreSQL 15: durable gift-card purchases}\n{/*0.8 PostgreSQL sync off dashed (reference); giftcard bold}"
set logscale x 2
set logscale y 10
set xtics (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
set xrange [0.8:320]
set grid xtics ytics mytics
set key outside below center horizontal maxcols 2 font ',9' spacing 1.1 samplen 3
set xlabel 'concurrent buyers'
set datafile missing 'NaN'
lw_of(i) = word(kinds, i) eq 'gc' ? 3.5 : 1.5
dt_of(i) = word(kinds, i) eq 'pgoff' ? 2 : 1
pt_of(i) = word(kinds, i) eq 'gc' ? 7 : 6
title_of(c) = c eq '1' ? 'one hot card' : c.' cards'
do for [j=1:nlayouts] {
  c = word(layouts, j)
  set title 'purchases/s, '.title_of(c)
  set ylabel 'purchases/s'
  set format y '%.0s%c'
  plot for [i=1:nsys] dir.'/chart-cards'.c.'.dat' using 1:(column(i+1)) with linespoints \
       title columnhead(i+1) lw lw_of(i) dt dt_of(i) pt pt_of(i) lc i
}
do for [j=1:nlayouts] {
  c = word(layouts, j)
  set title 'p99 latency, '.title_of(c)
  set ylabel 'p99 ms'
  set format y '%g'
  plot for [i=1:nsys] dir.'/chart-cards'.c.'.dat' using 1:(column(nsys+i+1)) with linespoints \
       title columnhead(nsys+i+1) lw lw_of(i) dt dt_of(i) pt pt_of(i) lc i
}
unset multiplot
