"""placeholder"""
from typing import ClassVar
from dnac.compiler.backends.base import Backend
class TimeloopBackend(Backend):
    name: ClassVar[str] = "timeloop"
    template_dir: ClassVar[str] = "timeloop"
    def write(self, design, target, out_dir, *, seed):
        raise NotImplementedError
