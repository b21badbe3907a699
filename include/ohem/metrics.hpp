#pragma once
/// @file
/// IQA evaluation metrics on Eigen (umbrella header): SRCC, KRCC (tau-b), PLCC and RMSE
/// (ohem/correlation.hpp), PLCC and RMSE after a 4- or 5-parameter logistic fit (ohem/logistic_fit.hpp),
/// per-group breakdowns and seeded bootstrap confidence intervals (ohem/evaluation.hpp), and paired
/// comparisons over a few seeds: t-interval, exact sign-flip test, Holm, power (ohem/paired.hpp).
///
/// Every function takes the model's predictions first and the subjective scores (MOS) second, as
/// `std::vector<double>`, Eigen vectors or 1-D tensors (`ohem::ScoresRef`, ohem/scores.hpp). Formulas,
/// starts and conventions are documented in docs/metrics.md.

#include <ohem/correlation.hpp>
#include <ohem/evaluation.hpp>
#include <ohem/logistic_fit.hpp>
#include <ohem/logistic_model.hpp>
#include <ohem/paired.hpp>
#include <ohem/resampling.hpp>
#include <ohem/scores.hpp>
