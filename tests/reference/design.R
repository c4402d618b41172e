# Reference values for tests/test_design.py (R survey package).
# Run from the project root:  Rscript tests/reference/design.R
# Writes the fixture tests/data/design_bank.csv (two quarters of a stratified bank survey with
# unequal sampling fractions) and prints every value the Python tests compare with.
suppressPackageStartupMessages(library(survey))
cat("# survey", as.character(packageVersion("survey")), "\n")
out <- function(name, x) cat(sprintf("%s = [%s]\n", name, paste(sprintf("%.15g", x), collapse = ", ")))

# ---- fixture ---------------------------------------------------------------------------------
set.seed(20250401)
branches <- c("B1", "B2", "B3", "B4", "B5", "B6")
n_h <- c(30, 25, 20, 30, 15, 20)
N_q1 <- c(5000, 2000, 800, 12000, 300, 1500)
N_q2 <- c(5200, 2100, 750, 12500, 320, 1400)
level <- c(0.6, 0.3, 0.1, -0.5, 0.8, 0.0)          # branch satisfaction shifts
rows <- list()
for (q in c("2025Q1", "2025Q2")) {
  N <- if (q == "2025Q1") N_q1 else N_q2
  for (h in seq_along(branches)) {
    n <- n_h[h]
    lat <- 3.6 + level[h] + (q == "2025Q2") * 0.3 * (h <= 3) + rnorm(n, 0, 0.9)
    rows[[length(rows) + 1]] <- data.frame(
      quarter = q, branch_id = branches[h], pop = N[h],
      segment = sample(c("mass", "affluent", "private_banking"), n, TRUE, c(0.5, 0.35, 0.15)),
      overall_satisfaction = pmin(5, pmax(1, round(lat))),
      recommend = pmin(10, pmax(0, round((lat - 1) / 4 * 10 + rnorm(n, 0.3, 1.3)))),
      complaint = as.integer(runif(n) < plogis(-3.4 - 1.6 * (lat - 3.5))),
      x1 = round(lat + rnorm(n, 0, 0.7), 3), x2 = round(rnorm(n, 3, 1), 3))
  }
}
d <- do.call(rbind, rows)
write.csv(d, "tests/data/design_bank.csv", row.names = FALSE)
d <- read.csv("tests/data/design_bank.csv")
d$csat_0_100 <- (d$overall_satisfaction - 1) / 4 * 100
d$top2 <- as.numeric(d$overall_satisfaction >= 4)
d$nps_points <- ifelse(d$recommend >= 9, 100, ifelse(d$recommend <= 6, -100, 0))
d$pilot <- ifelse(d$branch_id %in% c("B1", "B2", "B3"), "pilot", "control")
d$w <- d$pop / ave(d$pop, d$quarter, d$branch_id, FUN = length)

q1 <- subset(d, quarter == "2025Q1")
des <- svydesign(ids = ~1, strata = ~branch_id, fpc = ~pop, weights = ~w, data = q1)
# ---- means, shares, NPS with design effects (Kish, without replacement) -----------------------
for (v in c("csat_0_100", "top2", "nps_points", "complaint", "x1")) {
  m <- svymean(reformulate(v), des, deff = TRUE)
  out(paste0("q1_", v), c(coef(m), SE(m), deff(m)))
}
out("q1_degf", degf(des))
ci <- svyciprop(~top2, des, method = "logit"); out("q1_top2_logit_ci", attr(ci, "ci"))
ci <- confint(svymean(~csat_0_100, des), df = degf(des)); out("q1_csat_t_ci", ci)
# NPS as the difference of the promoter and detractor shares (svycontrast), the same number and se
pd <- svymean(~I(as.numeric(recommend >= 9)) + I(as.numeric(recommend <= 6)), des)
out("q1_nps_contrast", c(100 * coef(svycontrast(pd, c(1, -1))), 100 * SE(svycontrast(pd, c(1, -1)))))
# ---- pilot vs control within the quarter (domains) ---------------------------------------------
tt <- svyttest(csat_0_100 ~ pilot, des); out("q1_pilot_ttest", c(tt$estimate, tt$statistic, tt$parameter, tt$p.value, tt$conf.int))
out("q1_by_pilot", unlist(svyby(~csat_0_100, ~pilot, des, svymean)[, c("csat_0_100", "se")]))
# ---- quarter 2 vs quarter 1 on the stacked design (strata nested in quarters) -------------------
d$stratum <- paste(d$quarter, d$branch_id)
both <- svydesign(ids = ~1, strata = ~stratum, fpc = ~pop, weights = ~w, data = d)
tt <- svyttest(csat_0_100 ~ quarter, both); out("q2_vs_q1_csat", c(tt$estimate, tt$statistic, tt$parameter, tt$p.value, tt$conf.int))
tt <- svyttest(nps_points ~ quarter, both); out("q2_vs_q1_nps", c(tt$estimate, tt$statistic, tt$parameter, tt$p.value, tt$conf.int))
# ---- weighted regression with design-based standard errors ----------------------------------------
fit <- svyglm(csat_0_100 ~ x1 + x2, design = des)
out("q1_svyglm_coef", coef(fit)); out("q1_svyglm_se", SE(fit))
# ---- raking to segment and (one margin) post-stratification ----------------------------------------
Ntot <- sum(N_q1)
seg <- data.frame(segment = c("mass", "affluent", "private_banking"), Freq = Ntot * c(0.7, 0.25, 0.05))
ps <- postStratify(des, ~segment, seg)
m <- svymean(~csat_0_100, ps); out("q1_poststrat_csat", c(coef(m), SE(m)))
d1 <- q1; d1$big <- ifelse(d1$branch_id %in% c("B1", "B4"), "big", "small")
des1 <- svydesign(ids = ~1, strata = ~branch_id, fpc = ~pop, weights = ~w, data = d1)
big <- data.frame(big = c("big", "small"), Freq = Ntot * c(0.6, 0.4))
rk <- rake(des1, list(~segment, ~big), list(seg, big), control = list(maxit = 1000, epsilon = 1e-12))
m <- svymean(~csat_0_100, rk); out("q1_rake_csat", c(coef(m), SE(m)))
m <- svymean(~top2, rk); out("q1_rake_top2", c(coef(m), SE(m)))
# ---- a weight column (with replacement, no fpc) --------------------------------------------------
dw <- svydesign(ids = ~1, weights = ~w, data = q1)
m <- svymean(~csat_0_100, dw, deff = TRUE); out("q1_weightcol_csat", c(coef(m), SE(m), deff(m)))
# ---- a stratum with one respondent (lonely PSU, "adjust": centred at the grand mean) -------------
options(survey.lonely.psu = "adjust")
lone <- rbind(subset(q1, branch_id != "B5"), subset(q1, branch_id == "B5")[1, ])
lone$w <- lone$pop / ave(lone$pop, lone$branch_id, FUN = length)
dl <- svydesign(ids = ~1, strata = ~branch_id, fpc = ~pop, weights = ~w, data = lone)
m <- svymean(~csat_0_100, dl); out("q1_lonely_csat", c(coef(m), SE(m)))
# ---- weighted LMG: Shapley decomposition of the weighted-lm R² over all orderings ----------------
r2w <- function(vars) if (length(vars) == 0) 0 else summary(lm(reformulate(vars, "csat_0_100"), data = q1, weights = w))$r.squared
preds <- c("x1", "x2", "recommend")
perms <- list(c(1,2,3), c(1,3,2), c(2,1,3), c(2,3,1), c(3,1,2), c(3,2,1))
lmg <- sapply(seq_along(preds), function(j) mean(sapply(perms, function(o) {
  k <- which(o == j); before <- preds[o[seq_len(k - 1)]]; r2w(c(before, preds[j])) - r2w(before) })))
out("q1_weighted_lmg", lmg)
