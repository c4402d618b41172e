# Reference values for tests/test_drivers.py. Run from the project root:
#   Rscript tests/reference/drivers.R
# relaimpo is not installable here (no CRAN access), so LMG is computed by brute force in base R:
# the average, over all p! orderings of the regressors, of the R² increment of each regressor
# when it enters the model (Lindeman, Merenda & Gold 1980; relaimpo's type = "lmg").
options(digits = 10)
data(swiss)
dir.create("tests/data", showWarnings = FALSE, recursive = TRUE)
write.csv(swiss, "tests/data/swiss.csv", row.names = FALSE)   # the 47-row fixture
y <- "Fertility"
xs <- c("Agriculture", "Examination", "Education", "Catholic", "Infant.Mortality")

r2 <- function(vars) if (length(vars) == 0) 0 else
  summary(lm(reformulate(vars, y), data = swiss))$r.squared

perms <- function(v) if (length(v) <= 1) list(v) else
  do.call(c, lapply(seq_along(v), function(i) lapply(perms(v[-i]), function(p) c(v[i], p))))

lmg <- setNames(numeric(length(xs)), xs)
orders <- perms(xs)
for (o in orders) {
  for (k in seq_along(o)) lmg[o[k]] <- lmg[o[k]] + r2(o[1:k]) - r2(o[seq_len(k - 1)])
}
lmg <- lmg / length(orders)
cat("== LMG (brute force over", length(orders), "orderings)\n"); print(lmg)
cat("sum =", sum(lmg), " full R2 =", r2(xs), "\n")

# Johnson (2000) relative weights, by hand
R <- cor(swiss[, c(y, xs)])
Rxx <- R[xs, xs]; rxy <- R[xs, y]
e <- eigen(Rxx); L <- e$vectors %*% diag(sqrt(e$values)) %*% t(e$vectors)
beta <- solve(L, rxy)
rw <- setNames(as.vector((L^2) %*% beta^2), xs)
cat("== relative weights\n"); print(rw)

# OLS with HC3 by hand (and sandwich::vcovHC as a second check)
fit <- lm(Fertility ~ ., data = swiss)
X <- model.matrix(fit); e <- resid(fit); h <- hatvalues(fit)
XtXi <- solve(crossprod(X))
V3 <- XtXi %*% t(X) %*% diag(e^2 / (1 - h)^2) %*% X %*% XtXi
cat("== coef, HC3 se (by hand), HC3 se (sandwich)\n")
print(cbind(coef = coef(fit), se_hc3 = sqrt(diag(V3)), se_sandwich = sqrt(diag(sandwich::vcovHC(fit, type = "HC3")))))
s <- summary(fit)
cat("R2 =", s$r.squared, " adjR2 =", s$adj.r.squared, " F =", s$fstatistic[1], " F p =",
    pf(s$fstatistic[1], s$fstatistic[2], s$fstatistic[3], lower.tail = FALSE), "\n")
cat("== standardised coefficients\n")
print(coef(fit)[xs] * sapply(swiss[xs], sd) / sd(swiss$Fertility))
cat("== VIF = diag(solve(cor(X)))\n"); print(diag(solve(cor(swiss[xs]))))
# studentised Breusch-Pagan (Koenker): n * R2 of e^2 on X; and lmtest::bptest
bp <- nrow(swiss) * summary(lm(e^2 ~ X[, -1]))$r.squared
cat("BP =", bp, " p =", pchisq(bp, length(xs), lower.tail = FALSE), "\n")
print(lmtest::bptest(fit))

# ordered logit on Fertility cut into 4 ordered classes (MASS::polr)
swiss$Fcat <- cut(swiss$Fertility, c(0, 60, 70, 80, 100), labels = FALSE)
cat("== polr coefficients, se (Fcat = cut(Fertility, c(0,60,70,80,100)))\n")
pf_ <- MASS::polr(factor(Fcat, ordered = TRUE) ~ Agriculture + Examination + Education + Catholic + Infant.Mortality,
                  data = swiss, Hess = TRUE)
print(cbind(coef = coef(pf_), se = sqrt(diag(vcov(pf_)))[names(coef(pf_))]))
print(pf_$zeta)
