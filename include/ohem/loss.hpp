#pragma once
/// @file
/// Deprecated name of <ohem/ohem_loss.hpp>, kept for one release so that existing includes keep compiling.

#include <ohem/ohem_loss.hpp>
