#pragma once
/// @file
/// Deprecated name of <ohem/task_losses.hpp>, kept for one release so that existing includes keep compiling.

#include <ohem/task_losses.hpp>
