#pragma once
/// @file
/// Umbrella header: includes every public header of ohem.

#include <ohem/version.hpp>
#include <ohem/slots.hpp>
#include <ohem/masks.hpp>
#include <ohem/twin.hpp>
