import getpass

from django.http import JsonResponse
from django.urls import path


def health(request):
    return JsonResponse({"status": "healthy"})


def whoami(request):
    return JsonResponse({"app": "django-release", "user": getpass.getuser()})


urlpatterns = [path("health/", health), path("", whoami)]
