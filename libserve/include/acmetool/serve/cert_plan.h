// placeholder (issue 7)
#pragma once
