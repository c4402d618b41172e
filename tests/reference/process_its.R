# Reference for study.stats.process.interrupted_time_series: segmented regression with Newey-West SE.
# Run: Rscript tests/reference/process_its.R   (needs the sandwich package)
suppressMessages(library(sandwich))
d <- read.csv("tests/data/its_weekly.csv")
d$week <- as.Date(d$week)
start <- as.Date("2025-04-01")
d <- d[!(d$week < start & d$week + 7 > start), ]          # drop the transition week
d$t <- as.numeric(d$week - d$week[1]) / 7
d$post <- as.numeric(d$week >= start)
t0 <- min(d$t[d$post == 1])
d$tpost <- ifelse(d$post == 1, d$t - t0, 0)
fit <- lm(value ~ t + post + tpost, data = d)
L <- floor(4 * (nrow(d) / 100)^(2 / 9))
V <- NeweyWest(fit, lag = L, prewhite = FALSE, adjust = TRUE)
cat(sprintf("n=%d lag=%d\n", nrow(d), L))
cat(sprintf("%s %.10f %.10f\n", names(coef(fit)), coef(fit), sqrt(diag(V))), sep = "")
